"""Bridges to the systems streamcoord sits above: dbt (running projects, importing manifests)
and Airflow (its REST API, asset events as streamcoord events)."""
