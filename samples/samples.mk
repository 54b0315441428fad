# samples: rules added by the samples work.
samples:
