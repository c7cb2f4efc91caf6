"""Tables, migrations, database engines and queries. The only package that talks SQL."""
