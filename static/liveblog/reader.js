// Reader page entry point.
import { startFeed } from "./live-feed.js";
import { PostAnchors } from "./post-anchor.js";

new PostAnchors(await startFeed()).start();
