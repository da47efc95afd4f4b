"""The control cycle: a fixed-period loop over frozen snapshots of the site."""
