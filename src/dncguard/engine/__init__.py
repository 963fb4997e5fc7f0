"""The engine: one scrub of rows into verdicts, whatever the entry point.

* :mod:`.scrubber`: :class:`Scrubber`, the library's entry point (settings, checks, the
  decision core, file and number scrubs);
* :mod:`.run`: :class:`ScrubRun`, the one array engine every road goes through;
* :mod:`.context`: every per-row and per-request context value, cleaned or refused;
* :mod:`.findings`: reasons shared per group and their merge into outcomes;
* :mod:`.summary`: the summary of a run and the one builder that counts it;
* :mod:`.tally`: work the sources report per run (the pre-filter's counts).

The package imports nothing on its own: ``dncguard.Scrubber`` is the public name.
"""
