package api

import (
	"context"
	"net/http"
)

type disconnectRequest struct {
	target
	// Code is wider than uint16 so that 70000 is reported as out of
	// range, not as a type error.
	Code   *int64 `json:"code"`
	Reason string `json:"reason"`
}

type unsubscribeRequest struct {
	target
	Channel string `json:"channel"`
}

func (h *handler) disconnect(ctx context.Context, _ http.ResponseWriter, body []byte) (any, error) {
	req, err := decode[disconnectRequest](body)
	if err != nil {
		return nil, err
	}
	if err := req.check(); err != nil {
		return nil, err
	}
	var code uint16 // 0: the gateway's default
	if req.Code != nil {
		// 4000–4999 only: the 1xxx codes have protocol meanings a
		// backend must not fake, and 3xxx are registered with IANA.
		if *req.Code < 4000 || *req.Code > 4999 {
			return nil, badRequest(`"code" must be from 4000 to 4999, not %d`, *req.Code)
		}
		code = uint16(*req.Code)
	}
	if len(req.Reason) > maxReasonBytes {
		return nil, badRequest(`"reason" is %d bytes, at most %d fit in a close frame`, len(req.Reason), maxReasonBytes)
	}
	n, err := h.b.Disconnect(ctx, req.User, req.Client, code, req.Reason)
	if err != nil {
		return nil, err
	}
	h.failures.succeeded() // relayed through the broker to the other instances
	return struct {
		Disconnected int `json:"disconnected"`
	}{n}, nil
}

func (h *handler) unsubscribe(ctx context.Context, _ http.ResponseWriter, body []byte) (any, error) {
	req, err := decode[unsubscribeRequest](body)
	if err != nil {
		return nil, err
	}
	if err := req.check(); err != nil {
		return nil, err
	}
	if err := h.checkChannel("channel", req.Channel); err != nil {
		return nil, err
	}
	n, err := h.b.Unsubscribe(ctx, req.User, req.Client, req.Channel)
	if err != nil {
		return nil, err
	}
	h.failures.succeeded() // relayed through the broker to the other instances
	return struct {
		Unsubscribed int `json:"unsubscribed"`
	}{n}, nil
}
