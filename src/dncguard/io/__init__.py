"""Files in and out: the contact files dncguard reads (:mod:`.tables`) and the verdict file it
writes (:mod:`.verdict_file`)."""
