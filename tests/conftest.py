"""Test set-up shared by every test: quiet, small, CPU-only TensorFlow."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# Tests run on the CPU; tests/gpu/ hands the machine's own setting back to the processes it starts.
os.environ.setdefault("MTL_TESTS_CUDA_VISIBLE_DEVICES", os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>"))
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
