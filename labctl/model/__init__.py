"""Lab files: YAML source, schema, overrides and the Lab model."""
