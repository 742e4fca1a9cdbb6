"""Side effects: Postgres, HTTP, dispatch to compute. No pipeline state lives here."""
