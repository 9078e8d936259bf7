"""librdkafka's errors, sorted as the runner needs them (`port.ClientErrors`). librdkafka raises one exception
type for everything, `KafkaException`, with the error's code inside; the adapter raises these subclasses instead
(`raised`), so that the runner's `except` clauses tell them apart as they do aiokafka's exception classes."""

from confluent_kafka import KafkaError, KafkaException

from .port import ClientErrors


class ClientError(KafkaException):
    """An error of the client; `error` is librdkafka's."""

    @property
    def error(self) -> KafkaError:
        error: KafkaError = self.args[0]
        return error


class Denied(ClientError):
    """The group or a topic is not allowed (a missing ACL)."""


class NotInGroup(ClientError):
    """A commit refused because the group moved on without this member."""


class Fenced(ClientError):
    """A newer producer or group generation fenced this one, or the coordinator aborted its transaction."""


class RecordRejected(ClientError):
    """One record's write refused for good."""


DENIED = {KafkaError.GROUP_AUTHORIZATION_FAILED, KafkaError.TOPIC_AUTHORIZATION_FAILED}
NOT_IN_GROUP = {
    KafkaError.UNKNOWN_MEMBER_ID,
    KafkaError.ILLEGAL_GENERATION,
    KafkaError.REBALANCE_IN_PROGRESS,
    KafkaError.FENCED_MEMBER_EPOCH,
    KafkaError.STALE_MEMBER_EPOCH,
    KafkaError._ASSIGNMENT_LOST,
}
FENCED = {
    KafkaError._FENCED,
    KafkaError.PRODUCER_FENCED,
    KafkaError.INVALID_PRODUCER_EPOCH,
    KafkaError.INVALID_PRODUCER_ID_MAPPING,
}
RECORD_REJECTED = {
    KafkaError.MSG_SIZE_TOO_LARGE,
    KafkaError.INVALID_MSG,
    KafkaError.INVALID_RECORD,
    KafkaError.INVALID_TIMESTAMP,
    KafkaError.RECORD_LIST_TOO_LARGE,
    KafkaError.TOPIC_AUTHORIZATION_FAILED,
    KafkaError.UNSUPPORTED_FOR_MESSAGE_FORMAT,
}
# Most specific first: an unauthorised topic is both denied (to a consumer) and a rejected record (to a producer);
# `raised_on_write` decides for writes.
KINDS: tuple[tuple[set[int], type[ClientError]], ...] = (
    (DENIED, Denied),
    (NOT_IN_GROUP, NotInGroup),
    (FENCED, Fenced),
    (RECORD_REJECTED, RecordRejected),
)


def raised(error: KafkaError | KafkaException) -> ClientError:
    """The exception to raise for librdkafka's `error` (or the exception it raised)."""
    if isinstance(error, ClientError):
        return error
    native: KafkaError = error.args[0] if isinstance(error, KafkaException) else error
    for codes, kind in KINDS:
        if native.code() in codes:
            return kind(native)
    return ClientError(native)


def raised_on_write(error: KafkaError) -> ClientError:
    """As `raised`, for a record's delivery: every refusal of the record itself is a rejected record."""
    return RecordRejected(error) if error.code() in RECORD_REJECTED else raised(error)


ERRORS = ClientErrors(
    any=(KafkaException,),
    denied=(Denied,),
    not_in_group=(NotInGroup,),
    fenced=(Fenced,),
    record_rejected=(RecordRejected,),
)
