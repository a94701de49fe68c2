package natsbridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
)

// The bridge speaks to JetStream through its plain API subjects where the
// jetstream package would cost more than it gives: publishing (an
// acknowledgement to parse, errors to tell apart) and direct gets (batches,
// which it does not offer).

// JetStream's error codes that the bridge tells apart.
const (
	codeNameInUse      = 10058 // stream name already in use (with another configuration)
	codeStreamNotFound = 10059
	codeWrongLastSeq   = 10071 // an expected last sequence did not hold
	codeStreamOffline  = 10118 // the stream's servers are not running
)

// An apiError is an error JetStream answered with.
type apiError struct {
	Code        int    `json:"code"`
	ErrCode     int    `json:"err_code"`
	Description string `json:"description"`
}

func (e *apiError) Error() string {
	return fmt.Sprintf("JetStream: %s (error %d)", e.Description, e.ErrCode)
}

// errNoStream: nothing answered on the stream's subjects: the stream does
// not exist, or no server of it is running.
var errNoStream = errors.New("no stream answers")

// errNoMessage: the stream has no such message.
var errNoMessage = errors.New("no such message")

// hasCode reports whether err is a JetStream error with that code.
func hasCode(err error, code int) bool {
	var e *apiError
	return errors.As(err, &e) && e.ErrCode == code
}

// publishMsg sends m to JetStream and waits for its acknowledgement. It
// returns the stream sequence, errNoStream, an *apiError, or what the
// connection says.
func (b *Bridge) publishMsg(ctx context.Context, m *nats.Msg) (uint64, error) {
	resp, err := b.nc.RequestMsgWithContext(ctx, m)
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			return 0, errNoStream
		}
		return 0, err
	}
	var ack struct {
		Error  *apiError `json:"error"`
		Stream string    `json:"stream"`
		Seq    uint64    `json:"seq"`
	}
	if err := json.Unmarshal(resp.Data, &ack); err != nil {
		return 0, fmt.Errorf("acknowledgement %q: %w", resp.Data, err)
	}
	if ack.Error != nil {
		return 0, ack.Error
	}
	return ack.Seq, nil
}

// directGetRequest is JetStream's direct get request.
type directGetRequest struct {
	Seq     uint64 `json:"seq,omitempty"`
	NextFor string `json:"next_by_subj,omitempty"`
	Batch   int    `json:"batch,omitempty"`
	UpToSeq uint64 `json:"up_to_seq,omitempty"`
}

func (b *Bridge) directGetSubject(t *topic) string { return "$JS.API.DIRECT.GET." + t.stream }

// getMsg returns message seq of t's stream, errNoMessage, or errNoStream.
func (b *Bridge) getMsg(ctx context.Context, t *topic, seq uint64) (*nats.Msg, error) {
	req, _ := json.Marshal(directGetRequest{Seq: seq})
	m, err := b.nc.RequestWithContext(ctx, b.directGetSubject(t), req)
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			return nil, errNoStream
		}
		return nil, err
	}
	if err := directStatus(m); err != nil {
		return nil, err
	}
	return m, nil
}

// getItems returns the items of t's stream from stream sequence seq on, up
// to upTo (the newest if 0) and at most n of them, in order, and whether
// the stream holds more after them. It returns errNoStream if the stream
// does not answer.
func (b *Bridge) getItems(ctx context.Context, t *topic, seq uint64, n int, upTo uint64) (msgs []*nats.Msg, more bool, err error) {
	inbox := b.nc.NewRespInbox()
	sub, err := b.nc.SubscribeSync(inbox)
	if err != nil {
		return nil, false, err
	}
	defer sub.Unsubscribe()
	req, _ := json.Marshal(directGetRequest{Seq: seq, NextFor: t.in, Batch: n, UpToSeq: upTo})
	if err := b.nc.PublishRequest(b.directGetSubject(t), inbox, req); err != nil {
		return nil, false, err
	}
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if errors.Is(err, nats.ErrNoResponders) {
			return msgs, false, errNoStream
		}
		if err != nil {
			return msgs, false, err
		}
		switch m.Header.Get("Status") {
		case "":
			msgs = append(msgs, m)
			continue
		case "204": // the end of the batch, with how many are left
			pending, _ := strconv.ParseUint(m.Header.Get("Nats-Num-Pending"), 10, 64)
			return msgs, pending > 0, nil
		}
		if err := directStatus(m); errors.Is(err, errNoMessage) {
			return msgs, false, nil // nothing from seq on
		} else if err != nil {
			return msgs, false, err
		}
	}
}

// directStatus turns the status of a direct get's answer into an error.
func directStatus(m *nats.Msg) error {
	switch st := m.Header.Get("Status"); st {
	case "":
		return nil
	case "404":
		return errNoMessage
	case "503":
		return errNoStream
	default:
		return fmt.Errorf("direct get: status %s %s", st, m.Header.Get("Description"))
	}
}

// sequenceOf returns the stream sequence of a message from the stream (a
// direct get's answer or a republished item), 0 if it has none.
func sequenceOf(m *nats.Msg) uint64 {
	n, err := strconv.ParseUint(m.Header.Get(hdrSequence), 10, 64)
	if err != nil {
		return 0
	}
	return n
}
