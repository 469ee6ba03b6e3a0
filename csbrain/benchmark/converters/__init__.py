"""One converter module per recipe (see ``_base`` for the contract)."""
