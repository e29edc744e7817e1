"""The classic dropout experiments behind `scripts/`, callable with tiny
settings from tests."""
