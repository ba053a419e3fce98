"""The lobby's pure core: the rules as functions over plain data — no I/O, no clock, no network.

Everything here takes what it needs (``now`` included) as arguments and returns values; the
shells around it (queue_server's storage, writer, server and loaders, the kiosk, the simulation)
do the reading, writing and waiting. tests/queue_server/test_core_purity.py keeps it so.
"""
