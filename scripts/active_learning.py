#!/usr/bin/env python3
"""Deep Bayesian active learning on MNIST (Gal, Islam & Ghahramani 2017)."""

from kdrop.experiments.active_learning_mnist import main

if __name__ == "__main__":
    main()
