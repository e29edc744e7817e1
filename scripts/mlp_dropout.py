#!/usr/bin/env python3
"""MNIST MLPs with and without dropout (Srivastava et al. 2014, Fig. 4)."""

from kdrop.experiments.mlp_dropout import main

if __name__ == "__main__":
    main()
