#!/usr/bin/python3
"""A local AWS Secrets Manager emulator for the secretsmgr test suites.

It keeps secrets, versions and staging labels the way AWS documents them,
verifies the SigV4 signature of every API request with botocore's signer,
serves the ECS container and EC2 IMDSv2 credential endpoints, and takes fault
orders on an unauthenticated admin path (/_admin/...).  See README.md.

This file is the entry point (its command line is documented in README.md);
the emulator itself is the package emu/ beside it, one module per concern.

Run with Debian's /usr/bin/python3 (stdlib + python3-botocore).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from emu.server import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
