#!/usr/bin/env node
import { isPlainList } from "./quick-list-args.js";

const argv = process.argv.slice(2);
if (isPlainList(argv)) await (await import("./quick-list.js")).runPlainList(argv);
else await (await import("./main.js")).run(argv);
