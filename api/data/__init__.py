"""The data layer: the engine, the tables (SQLModel), every query (crud), migrations and the seed loader."""
