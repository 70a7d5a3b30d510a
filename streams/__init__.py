"""The service's command line today; the Faust app (topics, tables, agents) joins it with the streaming issue."""
