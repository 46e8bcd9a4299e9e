"""Protobuf modules generated from protocol/proto/*.proto by sdk-python/scripts/generate.sh.

Do not edit: regenerate. tests/test_generated.py fails when these files are not current.
"""
