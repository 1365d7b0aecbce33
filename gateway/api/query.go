package api

import (
	"context"
	"net/http"
	"slices"
)

// maxHistoryLimit bounds one history response, as the client protocol's
// history command does; 0 or absent means this many.
const maxHistoryLimit = 1000

type channelRequest struct {
	Channel string `json:"channel"`
}

type historyRequest struct {
	Channel string `json:"channel"`
	Since   uint64 `json:"since"`
	Limit   int    `json:"limit"`
	Reverse bool   `json:"reverse"`
}

type historyItem struct {
	Offset uint64 `json:"offset"`
	outData
}

type channelsRequest struct {
	Pattern string `json:"pattern"`
}

// channelArg decodes a body whose only field is a required channel.
func (h *handler) channelArg(body []byte) (string, error) {
	req, err := decode[channelRequest](body)
	if err != nil {
		return "", err
	}
	return req.Channel, h.checkChannel("channel", req.Channel)
}

func (h *handler) presence(ctx context.Context, _ http.ResponseWriter, body []byte) (any, error) {
	ch, err := h.channelArg(body)
	if err != nil {
		return nil, err
	}
	members, err := h.b.Presence(ctx, ch)
	if err != nil {
		return nil, err
	}
	h.failures.succeeded()
	return struct {
		Clients []Member `json:"clients"`
	}{nonNil(members)}, nil
}

func (h *handler) presenceStats(ctx context.Context, _ http.ResponseWriter, body []byte) (any, error) {
	ch, err := h.channelArg(body)
	if err != nil {
		return nil, err
	}
	clients, users, err := h.b.PresenceStats(ctx, ch)
	if err != nil {
		return nil, err
	}
	h.failures.succeeded()
	return struct {
		Clients int `json:"clients"`
		Users   int `json:"users"`
	}{clients, users}, nil
}

func (h *handler) history(ctx context.Context, _ http.ResponseWriter, body []byte) (any, error) {
	req, err := decode[historyRequest](body)
	if err != nil {
		return nil, err
	}
	if err := h.checkChannel("channel", req.Channel); err != nil {
		return nil, err
	}
	if req.Limit < 0 {
		return nil, badRequest(`"limit" must not be negative`)
	}
	limit := req.Limit
	if limit == 0 || limit > maxHistoryLimit {
		limit = maxHistoryLimit
	}
	pubs, top, epoch, err := h.b.History(ctx, req.Channel, req.Since, limit, req.Reverse)
	if err != nil {
		return nil, err
	}
	h.failures.succeeded()
	items := make([]historyItem, len(pubs))
	for i, p := range pubs {
		items[i] = historyItem{p.Offset, encodeData(p.Data)}
	}
	return struct {
		Publications []historyItem `json:"publications"`
		Offset       uint64        `json:"offset"`
		Epoch        string        `json:"epoch"`
	}{items, top, epoch}, nil
}

func (h *handler) channels(ctx context.Context, _ http.ResponseWriter, body []byte) (any, error) {
	req, err := decode[channelsRequest](body)
	if err != nil {
		return nil, err
	}
	if err := h.checkPattern(req.Pattern); err != nil {
		return nil, err
	}
	all, err := h.b.Channels(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(all))
	for _, ch := range all {
		if req.Pattern == "" || match(req.Pattern, ch) {
			out = append(out, ch)
		}
	}
	slices.Sort(out) // stable output for diffing and paging by eye
	return struct {
		Channels []string `json:"channels"`
	}{out}, nil
}

func (h *handler) info(ctx context.Context, _ http.ResponseWriter, body []byte) (any, error) {
	// No fields, but a malformed body is still the caller's bug.
	if _, err := decode[struct{}](body); err != nil {
		return nil, err
	}
	info, err := h.b.Info(ctx)
	if err != nil {
		return nil, err
	}
	if info == nil {
		info = map[string]any{}
	}
	return info, nil
}

// nonNil makes an empty list encode as [], not null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
