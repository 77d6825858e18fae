"""Training tables from the feature declarations: the point-in-time backfill and the served-feature skew check.

- `fyp.training.history`: the engagement history in Kafka order, and which rows the features job admitted;
- `fyp.training.pointintime`: each row's features and histories as Redis held them at the row's time;
- `fyp.training.labels`: what followed each row within each label's horizon;
- `fyp.training.backfill`: all of it for one training set, in memory (pure);
- `fyp.training.table`: the Iceberg table `training.<name>`; `fyp.training.build`: read, backfill, write;
- `fyp.training.skew`: served rows against the backfill (`fyp training-set verify`).

docs/TRAINING.md describes the rules; `fyp training-set build|verify|list` runs them.
"""
