package thing

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/net/blockwise"
	"github.com/plgd-dev/go-coap/v3/udp/client"
)

// The SDK transfers large bodies block-wise (RFC 7959) itself rather than
// with go-coap's block-wise layer, which sends a Block2 continuation
// outside its retransmission: one lost continuation stalled the request
// until its deadline. Here every block is a confirmable request of its own,
// retransmitted like any other.

// blockSZX is the block size: 1024 bytes, what go-coap servers use.
const blockSZX = blockwise.SZX1024

// maxAnswerBytes bounds an answer assembled from blocks.
const maxAnswerBytes = 1 << 20

// request is one CoAP request to the gateway.
type request struct {
	code codes.Code
	path string
	cf   message.MediaType // with body only
	body []byte
	opts []message.Option // Uri-Query options
}

// reply is the gateway's whole answer.
type reply struct {
	code   codes.Code
	body   []byte
	maxAge uint32
	hasAge bool

	hasBlock2, block2More bool
}

// roundTrip sends r over c, its body in blocks when it is larger than
// one, and reads the answer, asking for its further blocks when it has
// more. Every block keeps the request's token, as go-coap servers match
// blocks by token. Each message's first timeout is g's round-trip
// estimate, and its answer a sample of it.
func (g *Gateway) roundTrip(ctx context.Context, c *client.Conn, r request) (reply, error) {
	token, err := message.GetToken()
	if err != nil {
		return reply{}, err
	}
	size := int(blockSZX.Size())
	var res reply
	for num := 0; ; num++ {
		chunk, more := r.body, false
		if len(r.body) > size {
			end := min((num+1)*size, len(r.body))
			chunk, more = r.body[num*size:end], end < len(r.body)
		}
		var block1 []uint32
		if len(r.body) > size {
			v, err := blockwise.EncodeBlockOption(blockSZX, int64(num), more)
			if err != nil {
				return reply{}, err
			}
			block1 = []uint32{v}
		}
		if res, err = g.send(ctx, c, r, token, chunk, block1, nil); err != nil {
			return reply{}, err
		}
		if !more {
			break
		}
		if res.code != codes.Continue {
			return res, nil // refused before the last block (e.g. 4.13)
		}
	}
	body := res.body
	for num := int64(1); ; num++ {
		more, ok := res.more()
		if !ok || !more {
			break
		}
		if len(body) > maxAnswerBytes {
			return reply{}, errors.New("thing: the gateway's answer is too large")
		}
		v, err := blockwise.EncodeBlockOption(blockSZX, num, false)
		if err != nil {
			return reply{}, err
		}
		if res, err = g.send(ctx, c, r, token, nil, nil, []uint32{v}); err != nil {
			return reply{}, err
		}
		body = append(body, res.body...)
	}
	res.body = body
	return res, nil
}

// more reports whether an reply has a Block2 option saying more blocks
// follow.
func (a reply) more() (more, ok bool) {
	return a.block2More, a.hasBlock2
}

// send sends one message of a request and reads its reply, sending it
// again on the schedule of [Gateway.transmit]. A message unanswered
// after its retransmissions is reported as errNoAnswer.
func (g *Gateway) send(ctx context.Context, c *client.Conn, r request, token message.Token, body []byte, block1, block2 []uint32) (reply, error) {
	mid := c.GetMessageID()
	var res *pool.Message
	err := g.transmit(ctx, g.schedule(), false, func(ctx context.Context) error {
		req := c.AcquireMessage(ctx)
		defer c.ReleaseMessage(req)
		req.SetCode(r.code)
		req.SetToken(token)
		req.SetType(message.Confirmable)
		req.SetMessageID(mid)
		if err := req.SetPath(r.path); err != nil {
			return err
		}
		for _, o := range r.opts {
			req.AddOptionBytes(o.ID, o.Value)
		}
		if r.body != nil {
			req.SetContentFormat(r.cf)
		}
		if block2 == nil && body != nil {
			req.SetBody(bytes.NewReader(body))
		}
		for _, v := range block1 {
			req.SetOptionUint32(message.Block1, v)
			req.SetOptionUint32(message.Size1, uint32(len(r.body)))
		}
		for _, v := range block2 {
			req.SetOptionUint32(message.Block2, v)
		}
		var err error
		res, err = c.Do(req)
		return err
	})
	if err != nil {
		return reply{}, err
	}
	defer c.ReleaseMessage(res)
	var a reply
	a.code = res.Code()
	if res.Body() != nil {
		if a.body, err = res.ReadBody(); err != nil {
			return reply{}, fmt.Errorf("thing: reading the gateway's answer: %w", err)
		}
	}
	if v, err := res.GetOptionUint32(message.MaxAge); err == nil {
		a.maxAge, a.hasAge = v, true
	}
	if v, err := res.GetOptionUint32(message.Block2); err == nil {
		if _, _, more, err := blockwise.DecodeBlockOption(v); err == nil {
			a.hasBlock2, a.block2More = true, more
		}
	}
	return a, nil
}
