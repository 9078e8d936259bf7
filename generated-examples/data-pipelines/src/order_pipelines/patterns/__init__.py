"""The patterns chosen when the service was generated: outbox, cdc. Each is a package of its
own; docs/patterns.md in the template (and this service's README) explains what each guarantees."""
