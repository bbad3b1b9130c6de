#!/usr/bin/env bash
# Fake GPU discovery for the standalone test cluster: each worker advertises the address in
# REPLENISH_FAKE_GPU (set per worker by tests/cluster/conftest.py), so tasks get distinct GPUs.
echo "{\"name\": \"gpu\", \"addresses\": [\"${REPLENISH_FAKE_GPU:-0}\"]}"
