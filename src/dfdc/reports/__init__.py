"""What the stages and notebooks report: ROC and reliability tables, evaluation of labelled
sets, and the figures of the training and inference notebooks."""
