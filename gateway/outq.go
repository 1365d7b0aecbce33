package gateway

import (
	"sync"

	"github.com/wsgate/wsgate/netpoll"
)

// A connection has a write queue only while something waits for its
// socket; queues are pooled so an idle connection holds none.
var outQueuePool = sync.Pool{New: func() any { return new(netpoll.WriteQueue) }}

func getOutQueue() *netpoll.WriteQueue { return outQueuePool.Get().(*netpoll.WriteQueue) }

func putOutQueue(q *netpoll.WriteQueue) {
	q.Reset()
	outQueuePool.Put(q)
}
