"""callscreen benchmark: load generator, seeder, baseline servers and the runner (issue #4)."""
