//! Unsupervised initial partition of the training set (filled in by the partition work).
