"""Runs moto's server on 127.0.0.1:PORT for one test process.

Prints "ready" once the server listens, then waits for its standard input
to close: that happens when the test process ends, however it ends (even
SIGKILL), so no emulator outlives the tests that started it.
"""
import sys

from moto.server import ThreadedMotoServer

server = ThreadedMotoServer(ip_address="127.0.0.1", port=int(sys.argv[1]), verbose=False)
server.start()
print("ready", flush=True)
sys.stdin.read()
server.stop()
