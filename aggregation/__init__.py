"""Federated averaging: pages send parameter deltas, never data; rounds are averaged into new versions.

Layers, each importing only the ones before it: `fedavg` (numpy rules), `settings`, `store`
(durable rounds and updates), `service` (round rules), `http` (requests → service). Publishing a
version (ONNX files, the archive, MMS) is the caller's: this package never imports `export`,
`edgecloud` or a training framework.
"""
