"""What a result becomes for a person: feedback pages, class reports, the CSV export, check/progress text."""
