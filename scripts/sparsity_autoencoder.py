#!/usr/bin/env python3
"""Dropout makes features sparse (Srivastava et al. 2014, Fig. 8)."""

from kdrop.experiments.sparsity_autoencoder import main

if __name__ == "__main__":
    main()
