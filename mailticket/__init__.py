"""mailticket: email-driven support tickets.

Data flow: smtp_inbox / imap_inbox / pipe -> intake -> mail (parse) -> guard -> threads
-> rules -> store -> notices -> outbox -> transport.
"""

__version__ = "0.1.0"
