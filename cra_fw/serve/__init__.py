"""`cra-fw serve`: the ledger in a web browser, on Datasette.

``app`` checks the ledger and starts Datasette read-only; ``metadata`` describes
every table and column; ``queries`` holds the views (canned queries); ``charts``
the dashboard (datasette-dashboards); ``sql`` the SQL functions that bind the
views to the ledger's rules; ``plugin`` the Datasette hooks.  Importing this
package imports nothing from Datasette: the CLI stays fast for other commands.
"""
