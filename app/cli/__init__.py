"""`finetune`: the command-line client of the public user API (HTTP only, never the database)."""
