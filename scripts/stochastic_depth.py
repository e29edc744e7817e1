#!/usr/bin/env python3
"""Stochastic depth (DropPath) and DropBlock on a small residual convnet."""

from kdrop.experiments.stochastic_depth import main

if __name__ == "__main__":
    main()
