#!/usr/bin/env python3
"""The CNN with Dropout(0.5) on MNIST, with and without dropout (main job)."""

from kdrop.experiments.cnn_dropout import main

if __name__ == "__main__":
    main()
