#!/usr/bin/env python3
"""The MNIST CNN under dropout-rate schedules: constant, curriculum, early, late."""

from kdrop.experiments.dropout_schedules import main

if __name__ == "__main__":
    main()
