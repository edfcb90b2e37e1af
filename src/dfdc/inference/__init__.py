"""The one inference path: checkpoints -> crop scores -> video scores -> the ensemble's
probability, shared by ``dfdc predict``, the ensemble stage and the Kaggle kernel."""
