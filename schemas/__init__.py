"""Wire formats: pydantic models of every event and result, named as the national platform names them."""
