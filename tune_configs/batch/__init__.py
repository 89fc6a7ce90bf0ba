"""The batch retoucher behind ``exposure retouch``: photos in, retouched files and records out.

The application layer over the inference API (:class:`policies.retoucher.Retoucher`); each
module has one job:

* :mod:`~tune_configs.batch.jobs` -- files, folders and globs -> jobs; output-folder safety;
* :mod:`~tune_configs.batch.options` -- what a run writes per photo (format, samples, sidecars);
* :mod:`~tune_configs.batch.plan` -- which jobs run: no output over an input or an existing file;
* :mod:`~tune_configs.batch.stages` -- one photo: read, decide, render, save (and its failure);
* :mod:`~tune_configs.batch.pipeline`, :mod:`~tune_configs.batch.threads`,
  :mod:`~tune_configs.batch.ray_data` -- the executors (pipelined local, one photo per thread,
  Ray Data streaming over a cluster with :mod:`~tune_configs.batch.ray_stages` on its workers);
  every executor writes the same files;
* :mod:`~tune_configs.batch.summary` -- the outcome of a run;
* :mod:`~tune_configs.batch.retouch` -- :func:`~tune_configs.batch.retouch.retouch_paths`, the driver.
"""
