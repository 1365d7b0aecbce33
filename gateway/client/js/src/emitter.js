// A minimal typed-by-convention event emitter shared by Client and
// Subscription. It works the same in browsers and Node (no EventTarget
// subclassing, whose event objects differ between the two).

export class Emitter {
  #handlers = new Map();

  /**
   * Calls fn(arg) for every `event` until the returned function is called.
   * @param {string} event
   * @param {(arg: any) => void} fn
   * @returns {() => void} removes the handler
   */
  on(event, fn) {
    let set = this.#handlers.get(event);
    if (!set) {
      set = new Set();
      this.#handlers.set(event, set);
    }
    set.add(fn);
    return () => this.off(event, fn);
  }

  /** Like on, for the next `event` only. */
  once(event, fn) {
    const off = this.on(event, (arg) => {
      off();
      fn(arg);
    });
    return off;
  }

  off(event, fn) {
    this.#handlers.get(event)?.delete(fn);
  }

  /**
   * Calls the handlers of event in the order they were added. A handler that
   * throws does not stop the others nor corrupt the client's state: its
   * error is rethrown on a fresh task, where the host reports it as
   * uncaught (window.onerror, process 'uncaughtException'). live, when
   * given, is asked before each handler: once it says false, the rest are
   * skipped.
   */
  emit(event, arg, live) {
    const set = this.#handlers.get(event);
    if (!set) return;
    for (const fn of [...set]) {
      if (live && !live()) return; // a handler before ended what the event is about
      try {
        fn(arg);
      } catch (err) {
        setTimeout(() => {
          throw err;
        }, 0);
      }
    }
  }

  /** The number of handlers of event (tests, and skipping work nobody listens to). */
  listenerCount(event) {
    return this.#handlers.get(event)?.size ?? 0;
  }
}
