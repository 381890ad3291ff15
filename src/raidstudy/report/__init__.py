"""What readers see: figures (:mod:`~raidstudy.report.plots`), Markdown and LaTeX tables
(:mod:`~raidstudy.report.tables`), the sentences of the narrative
(:mod:`~raidstudy.report.narrative`) and the README's results block
(:mod:`~raidstudy.report.readme`)."""
