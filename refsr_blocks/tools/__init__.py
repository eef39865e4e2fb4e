"""What users run around the library: the ``refsr-blocks`` command (:mod:`~refsr_blocks.tools.cli`),
pictures of a model's intermediates (:mod:`~refsr_blocks.tools.viz`), parameter counts
(:mod:`~refsr_blocks.tools.summary`) and the reduced-precision check
(:mod:`~refsr_blocks.tools.precision`)."""
