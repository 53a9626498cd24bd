"""The Secrets Manager emulator as a package; smemu.py is its entry point.

One module per concern, layered one way (nothing imports a module listed
after it):

  common       constants, ApiError, time helpers
  lost_answer  the lost_answer fault: performed, answer dropped
  params       request parameter validation (ValidationException)
  store        secrets, versions, staging labels; every value ever stored
  iam          IAM identity policies and the IAM check of a call
  sts          STS: AssumeRole, AssumeRoleWithWebIdentity, issued keys
  state        Emulator: store, keys, issued credentials, faults, counters
  operations   the API operations, HANDLERS
  dialects     valid answers of other implementations
  sigv4        the SigV4 check of every API request (botocore's signer)
  faults       fault answers (mixin of the HTTP handler)
  credentials  ECS and IMDSv2 credential endpoints (mixin)
  admin        the /_admin/ API (mixin)
  server       the HTTP handler, dispatch, the command line, main()
"""
