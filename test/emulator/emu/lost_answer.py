"""The lost_answer fault: the operation is performed, then the connection is
closed without its answer.

What a client sees when a request reached Secrets Manager but the answer
never came back (a reset connection, a timeout after the write): it cannot
know whether the call took effect.  A PutSecretValue retried with the same
ClientRequestToken and value must then succeed without making a second
version (AWS: "the request is ignored"), which is what this fault lets a
test prove.
"""

KIND = "lost_answer"


def arm(handler, fault):
    """Called with the fault taken for this request (or None).  True when it
    is a lost answer: the request is then performed normally and only its
    answer is dropped (see intercept)."""
    armed = fault is not None and fault["fault"] == KIND
    handler.sm_lost_answer = armed
    return armed


def intercept(handler, emu, op, secret_id, start):
    """Just before the answer of a performed request: close the connection
    instead when the request was armed.  True when the answer was dropped."""
    if not getattr(handler, "sm_lost_answer", False):
        return False
    handler.sm_lost_answer = False
    emu.record("%s[%s]" % (op, KIND), secret_id, 0, handler.elapsed_us(start))
    handler.drop()
    return True
