// Reader page entry point.
import { startFeed } from "./live-feed.js";

startFeed();
