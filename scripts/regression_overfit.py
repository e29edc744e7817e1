#!/usr/bin/env python3
"""Dropout against overfitting on a 10-point regression."""

from kdrop.experiments.regression_overfit import main

if __name__ == "__main__":
    main()
