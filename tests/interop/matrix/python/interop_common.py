# Shared by the Python grpcio interop peers (reference implementations used
# to check crpc; run with Debian's /usr/bin/python3).
#
# The stubs are generated at build time (protoc --python_out and
# grpc_python_plugin) into <dir>/grpc/testing/, where <dir> is this script's
# directory in the build tree, or $CRPC_INTEROP_PY_STUBS. Their Python
# package is "grpc.testing", which lives inside grpcio's own "grpc" package:
# we extend grpc.__path__ so that the generated modules are found there.
import os
import sys

import grpc

_STUBS = os.environ.get('CRPC_INTEROP_PY_STUBS',
                        os.path.dirname(os.path.abspath(__file__)))
if not os.path.isdir(os.path.join(_STUBS, 'grpc', 'testing')):
    sys.exit('interop: no generated stubs under %s/grpc/testing '
             '(set CRPC_INTEROP_PY_STUBS)' % _STUBS)
grpc.__path__.append(os.path.join(_STUBS, 'grpc'))

from grpc.testing import empty_pb2  # noqa: E402
from grpc.testing import messages_pb2  # noqa: E402
from grpc.testing import test_pb2_grpc  # noqa: E402

__all__ = ['empty_pb2', 'messages_pb2', 'test_pb2_grpc', 'parse_bool',
           'read_file']


def parse_bool(value):
    """gRPC's interop programs take --flag, --flag=true and --flag=false."""
    v = value.lower()
    if v in ('true', '1', 'yes', ''):
        return True
    if v in ('false', '0', 'no'):
        return False
    raise ValueError('not a boolean: %r' % value)


def read_file(path):
    with open(path, 'rb') as f:
        return f.read()
