"""The ground floor: what every app builds on and nothing in it imports an app.

`core.ownership` is the owner-scoped QuerySet every owned model uses; `core.jobs` is
the status row of every long job. Apps import from here, never from the project
package `twinsite`, which imports them all.
"""
