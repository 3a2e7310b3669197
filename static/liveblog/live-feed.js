// Wires the page's feed to a live connection, continuing from the head the server rendered.
import { FeedConnection } from "./feed-connection.js";
import { FeedView } from "./feed-view.js";

export function startFeed() {
  const view = new FeedView();
  const { slug, epoch, head } = view.feed.dataset;
  const connection = new FeedConnection({
    slug,
    epoch,
    seq: Number(head),
    onSnapshot: (frame) => view.reset(frame.posts, frame.blog),
    onEvent: (frame) => view.apply(frame),
    onState: (state) => view.showConnection(state),
  });
  connection.start();
  return { view, connection };
}
